export { resolveKernel, bzImageVersion, compareVersions, type KernelInfo, type ResolveKernelOptions } from './kernel.js';
export { writeCpio, readCpio, type CpioEntry, type CpioParsed } from './cpio.js';
export { parseModuleIndex, resolveModules, loadModuleIndex, moduleName, type ModuleIndex } from './modules.js';
export { initScript, PROBE_MARKER, INIT_ERROR_PREFIX, INIT_APPLETS } from './init-script.js';
export { buildInitramfs, GUEST_MODULES, type InitramfsInfo, type BuildInitramfsOptions } from './initramfs.js';
