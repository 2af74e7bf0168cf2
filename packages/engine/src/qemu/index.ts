export { buildQemuArgs, kernelCmdline, qemuOptValue, AGENT_PORT_NAME, type VmSpec, type Accel } from './args.js';
export { launchQemu, type LaunchOptions, type QemuProcess, type QemuExit } from './process.js';
export { startQemu } from './start.js';
export { qemuVersion, qemuVersionInfo, parseQemuVersion, type QemuVersionInfo } from './version.js';
export { runTool, qemuImgCreateOverlay, type RunToolOptions, type RunToolResult } from './tools.js';
export { TailBuffer } from './tail.js';
export { which } from './which.js';
