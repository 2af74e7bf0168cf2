export { buildQemuArgs, kernelCmdline, qemuOptValue, AGENT_PORT_NAME, type VmSpec, type Accel } from './args.js';
export { launchQemu, type LaunchOptions } from './process.js';
export { directLauncher, spawnUnderPdeathsig, type QemuLauncher, type QemuProcess, type QemuExit, type LaunchRequest, type VmOwner } from './launcher.js';
export { startQemu } from './start.js';
export { qemuVersion, qemuVersionInfo, parseQemuVersion, type QemuVersionInfo } from './version.js';
export { runTool, qemuImgCreateOverlay, type RunToolOptions, type RunToolResult } from './tools.js';
export { TailBuffer } from './tail.js';
export { which } from './which.js';
