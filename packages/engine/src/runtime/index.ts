export { runtimeDir, createVmDir, openVmDir, readOwner, removeVmDir, type VmExtras, type DirOwner, VM_DIR_PREFIX, OWNER_FILE, type VmDir, type OwnerRecord } from './dir.js';
export { cleanupStale, type CleanupOptions, type CleanupReport } from './cleanup.js';
export { procStartTime, procCmdline, sameProcessAlive } from './proc.js';
