/**
 * Where a QEMU child's memory goes, by mapping class, from /proc/<pid>/smaps. PSS is what the
 * host pays: a page shared by k processes counts 1/k in each, so shared classes shrink as more
 * children are alive and private ones do not.
 *
 * Classes (QEMU 7.2 on x86-64 Linux):
 *  - guestShared: the snapshot's memory file (MAP_PRIVATE), pages still the page cache's (PSS splits them);
 *  - guestCow: anonymous pages in that mapping: guest pages the child wrote (copied on write);
 *  - tcgBuffer: TCG's translated-code buffer (the one rwx anonymous mapping; absent under KVM);
 *  - heap: [heap] (glibc's main arena);
 *  - anon: other anonymous memory (malloc arenas and large allocations: the softmmu TLB tables,
 *    thread stacks, device state);
 *  - libs: QEMU's binary and shared libraries (relocated data is private, text is shared);
 *  - other: everything else (vdso, other files).
 */
export type MemClass = 'guestShared' | 'guestCow' | 'tcgBuffer' | 'heap' | 'anon' | 'libs' | 'other';
export const MEM_CLASSES: readonly MemClass[] = ['guestShared', 'guestCow', 'tcgBuffer', 'heap', 'anon', 'libs', 'other'];

/** Per class, in KiB: PSS, and the private dirty part of it. */
export type Breakdown = Record<MemClass, { pssKib: number; privateDirtyKib: number }>;

export function emptyBreakdown(): Breakdown {
  return Object.fromEntries(MEM_CLASSES.map((c) => [c, { pssKib: 0, privateDirtyKib: 0 }])) as Breakdown;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/;

function field(block: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(block);
  return m ? Number(m[1]) : 0;
}

/**
 * Classifies every mapping of one smaps text. guestMemFile: the path (or its file name) of the
 * memory file the child maps; a mapping whose path ends with it is guest RAM.
 */
export function classifySmaps(text: string, guestMemFile: string): Breakdown {
  const out = emptyBreakdown();
  for (const block of text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const head = HEADER.exec(block.split('\n', 1)[0]!);
    if (!head) continue;
    const perms = head[3]!;
    const name = head[4]!.replace(/ \(deleted\)$/, '');
    const pss = field(block, 'Pss');
    const pd = field(block, 'Private_Dirty');
    const anonKib = field(block, 'Anonymous');
    if (name !== '' && (name === guestMemFile || name.endsWith(`/${guestMemFile}`))) {
      // Copied-on-write pages of a private file mapping are anonymous, private unless KSM merged
      // them (then their PSS is less than their size: counted here at most at the mapping's PSS).
      const cow = Math.min(anonKib, pss);
      out.guestCow.pssKib += cow;
      out.guestCow.privateDirtyKib += Math.min(anonKib, pd);
      out.guestShared.pssKib += pss - cow;
      out.guestShared.privateDirtyKib += pd - Math.min(anonKib, pd);
      continue;
    }
    const cls: MemClass = name === ''
      ? (perms.startsWith('rwx') ? 'tcgBuffer' : 'anon')
      : name === '[heap]' ? 'heap'
        : name === '[stack]' ? 'anon'
          : name.startsWith('/') && !name.startsWith('/dev/') ? 'libs'
            : 'other';
    out[cls].pssKib += pss;
    out[cls].privateDirtyKib += pd;
  }
  return out;
}

export function totalPssKib(b: Breakdown): number {
  return MEM_CLASSES.reduce((s, c) => s + b[c].pssKib, 0);
}

/** What a KVM host would show for the same child: no translated-code buffer (TCG only). */
export function kvmEquivalentPssKib(b: Breakdown): number {
  return totalPssKib(b) - b.tcgBuffer.pssKib;
}
