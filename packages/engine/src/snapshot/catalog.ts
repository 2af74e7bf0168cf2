/**
 * The snapshot catalogue: the one place that lists and reads snapshots, walks their chains
 * (ancestors, dependents, the tree) and removes them. Every walk keeps a seen-set, so a damaged
 * store whose manifests point at each other in a cycle is reported or skipped, never recursed.
 */
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { isLayer } from './manifest.js';
import { listSnapshots, readSnapshot, removeSnapshot, type SnapshotEntry } from './store.js';
import { ancestors } from './chain.js';
import { assembledPath } from './memory.js';

export interface SnapshotTreeNode {
  entry: SnapshotEntry;
  children: SnapshotTreeNode[];
}

export interface SnapshotDetail {
  entry: SnapshotEntry;
  /** Root first. */
  ancestors: string[];
  /** Only the layers made directly on this snapshot. */
  children: string[];
}

export class SnapshotCatalog {
  constructor(private readonly layout: HomeLayout) {}

  list(): Promise<SnapshotEntry[]> {
    return listSnapshots(this.layout);
  }

  read(tag: string): Promise<SnapshotEntry> {
    return readSnapshot(this.layout, tag);
  }

  /** Root first; throws FORKD_E_SNAPSHOT_INCOMPATIBLE when the chain is broken or cyclic. */
  async ancestors(tag: string): Promise<string[]> {
    return (await ancestors(this.layout, await this.read(tag))).map((e) => e.tag);
  }

  /** Every snapshot layered on tag, directly or not, leaves first (the order to delete them in). */
  async dependents(tag: string): Promise<string[]> {
    return dependentsIn(parentLinks(await this.list()), tag);
  }

  async detail(tag: string): Promise<SnapshotDetail> {
    const entry = await this.read(tag);
    const all = await this.list();
    return {
      entry,
      ancestors: (await ancestors(this.layout, entry)).map((e) => e.tag),
      children: all.filter((e) => e.manifest.parent_tag === tag && e.tag !== tag).map((e) => e.tag),
    };
  }

  /**
   * The forest: snapshots without a (present) parent are roots, layers hang under their parent.
   * Snapshots only reachable through a cycle become roots too, so every snapshot appears once.
   */
  async tree(): Promise<SnapshotTreeNode[]> {
    const all = await this.list();
    const tags = new Set(all.map((e) => e.tag));
    const byParent = new Map<string | null, SnapshotEntry[]>();
    for (const e of all) {
      const p = e.manifest.parent_tag !== null && tags.has(e.manifest.parent_tag) ? e.manifest.parent_tag : null;
      byParent.set(p, [...(byParent.get(p) ?? []), e]);
    }
    const seen = new Set<string>();
    const node = (entry: SnapshotEntry): SnapshotTreeNode => {
      seen.add(entry.tag);
      const children = (byParent.get(entry.tag) ?? []).filter((c) => !seen.has(c.tag));
      return { entry, children: children.map(node) };
    };
    const roots = (byParent.get(null) ?? []).map(node);
    for (const e of all) if (!seen.has(e.tag)) roots.push(node(e));
    return roots;
  }

  /**
   * Removes a snapshot; one with layers on it only with cascade (they go first, leaves first).
   * A layer's assembled memory image in the cache goes with it. Returns the removed tags.
   */
  async remove(tag: string, opts: { cascade?: boolean } = {}): Promise<string[]> {
    await this.read(tag).catch((e: unknown) => {
      // A directory without a valid manifest is still removable (a damaged snapshot).
      if (!(e instanceof ForkdError) || e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND') throw e;
    });
    const deps = await this.dependents(tag);
    if (deps.length > 0 && !opts.cascade) {
      throw new ForkdError('FORKD_E_HAS_DEPENDENTS', `snapshot ${tag} has layers on it: ${deps.join(', ')} (remove them first, or cascade)`, { dependents: deps });
    }
    for (const t of [...deps, tag]) {
      const m = await this.read(t).then((e) => e.manifest, () => null);
      await removeSnapshot(this.layout, t);
      if (m && isLayer(m)) await fs.rm(assembledPath(this.layout, m), { force: true });
    }
    return [...deps, tag];
  }
}

function parentLinks(all: SnapshotEntry[]): Map<string, string | null> {
  return new Map(all.map((e) => [e.tag, e.manifest.parent_tag]));
}

function dependentsIn(links: Map<string, string | null>, tag: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>([tag]);
  const visit = (t: string): void => {
    for (const [child, parent] of links) {
      if (parent !== t || seen.has(child)) continue;
      seen.add(child);
      visit(child);
      out.push(child);
    }
  };
  visit(tag);
  return out;
}
