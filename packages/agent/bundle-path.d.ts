/** Absolute path of the guest bundle directory (dist/guest): agent.mjs, pyrepl.py, sys-helper.pl. */
export declare const GUEST_DIR: string;
