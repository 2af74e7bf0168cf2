// Types of tree-layout.js (plain JavaScript served to the browser as is) for the tests that import it.
export interface LayoutNode { tag: string; kind: string; created_at_unix: number; sandboxes: string[]; children: LayoutNode[] }
export interface Box { tag: string; node: LayoutNode; x: number; y: number; w: number; h: number; depth: number }
export interface Pill { id: string; tag: string; x: number; y: number; w: number; h: number }
export interface Edge { from: string; to: string; path: string; fromSandbox: boolean }
export declare const SIZES: { boxW: number; boxH: number; pillH: number; pillGap: number; hGap: number; vGap: number; margin: number };
export declare function sourceSandbox(branchedFrom: string | null | undefined): string | null;
export declare function layoutForest(roots: LayoutNode[], info?: Record<string, { branched_from: string | null }>, sizes?: typeof SIZES): { width: number; height: number; boxes: Box[]; pills: Pill[]; edges: Edge[] };
export declare function bytes(n: number): string;
export declare function age(unixSecs: number, nowMs?: number): string;
