/** Progress of slow work (image builds, snapshots, spawns), for spinners and job status. */
export interface ProgressEvent {
  phase: string;
  message: string;
  /** 0..1 when known. */
  fraction?: number;
}
export type ProgressFn = (ev: ProgressEvent) => void;
export const noProgress: ProgressFn = () => undefined;
