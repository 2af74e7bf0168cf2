/** A networked child's plumbing, as the network namespace code sets it up (read by egress, ports). */
export interface ChildNetwork {
  netns: string;
  netnsPath: string;
  guestAddr: string;
  gatewayAddr: string;
  tap: string;
  vethChild: string;
  vethUplink: string;
  hostAddr: string;
  uplinkNetns: string | null;
}
