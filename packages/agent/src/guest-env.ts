/**
 * Variables every process the agent starts gets on top of the defaults (commands, services, the
 * Python interpreter): a fork child's vary values and FORKD_SEED. A call's own env still wins.
 */
export const guestEnv: Record<string, string> = {};
