/** What every benchmark prints about the host its figures came from. */
import os from 'node:os';

/** The 1, 5 and 15 minute load averages, as "1.23 4.56 7.89" (other work shares this machine). */
export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

export function cpuModel(): string {
  return os.cpus()[0]?.model ?? 'unknown';
}

/** "<cpu model>, <n> cores, <n> GiB". */
export function hostLine(): string {
  return `${cpuModel()}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
}
