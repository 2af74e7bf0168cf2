/** Absolute path of the guest bundle directory (dist/guest): agent.mjs, pyrepl.py, sys-helper.c. */
export declare const GUEST_DIR: string;
