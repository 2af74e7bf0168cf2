/**
 * Snapshots through OCI registries and packs: push, pull, pack, unpack. They run the engine in
 * this process (like `image build`): they read and write this host's store and talk to the
 * registry directly; the daemon sees what lands (it lists the store). Spellings of the original
 * forkd work too: `pack --tag T --out FILE`, `unpack FILE --tag T --force`, `push --tag T URL`.
 * Trust: `keygen`, `push --sign KEY`, and `pull` checked against the trust policy
 * (--trust-policy, FORKD_TRUST_POLICY or FORKD_HOME/trust-policy.json); docs/oci-format.md.
 */
import type { Command } from 'commander';
import { ForkdError } from '@forkd/protocol';
import { generateKeyFiles, type Credentials } from '@forkd/engine';
import type { CliContext } from '../client.js';
import { bytes, printJson, progressPrinter } from '../output.js';

interface CredFlags {
  username?: string;
  passwordStdin?: boolean;
  plainHttp?: boolean;
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

/** --username with --password-stdin (never a password on the command line); else Docker's config.json. */
async function access(o: CredFlags): Promise<{ credentials?: Credentials | null; scheme?: 'http' }> {
  if (o.passwordStdin && !o.username) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--password-stdin needs --username');
  if (o.username && !o.passwordStdin) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--username needs --password-stdin (passwords are never taken on the command line)');
  const out: { credentials?: Credentials | null; scheme?: 'http' } = {};
  if (o.username) out.credentials = { username: o.username, password: await readStdin() };
  if (o.plainHttp) out.scheme = 'http';
  return out;
}

function credOptions(cmd: Command): Command {
  return cmd
    .option('--username <user>', 'registry user (with --password-stdin); default: Docker config.json, else anonymous')
    .option('--password-stdin', 'read the registry password from stdin')
    .option('--plain-http', 'talk http to the registry (loopback registries do by default)')
    .option('--json', 'JSON output');
}

function pickTag(positional: string | undefined, flag: string | undefined, what: string): string {
  const tag = flag ?? positional;
  if (!tag) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${what}: which snapshot? (TAG or --tag T)`);
  if (flag && positional && flag !== positional) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${what}: TAG ${positional} and --tag ${flag} disagree`);
  return tag;
}

function rate(n: number, ms: number): string {
  return `${bytes(n)} in ${(ms / 1000).toFixed(1)} s (${bytes(ms > 0 ? (n * 1000) / ms : 0)}/s)`;
}

const SKIP_WARNING = [
  '',
  '!!! WARNING: --insecure-skip-verify: signatures are NOT checked.',
  '!!! The trust policy\'s required signatures are ignored for this pull: what lands may be anyone\'s.',
  '',
].join('\n');

export function registerHubCommands(program: Command, { run, engine }: CliContext): void {
  program.command('keygen').argument('<file>', 'private key file to create (0600); the public key goes to FILE.pub').option('--json', 'JSON output')
    .description('create an ed25519 key pair for signing pushed snapshots (push --sign FILE)')
    .action(run(async (file: string, o: { json?: boolean }) => {
      const k = await generateKeyFiles(file);
      if (o.json) return printJson({ private_key_file: k.privateKeyFile, public_key_file: k.publicKeyFile, key_id: k.keyId });
      process.stdout.write(`private key ${k.privateKeyFile} (mode 600: keep it secret)\npublic key  ${k.publicKeyFile} (list it in a trust policy)\nkey id      ${k.keyId}\n`);
    }));

  credOptions(program.command('push').argument('[tag]', 'snapshot tag').argument('[ref]', 'registry reference: host[:port]/repo[:tag]').option('--tag <tag>', 'snapshot tag (the original spelling: push --tag T REF)').option('--sign <keyfile>', 'sign the pushed manifest with this ed25519 private key (forkd keygen)'))
    .description('push a snapshot and the links of its chain the registry lacks to an OCI registry')
    .action(run(async (a: string | undefined, b: string | undefined, o: CredFlags & { tag?: string; sign?: string; json?: boolean }) => {
      // `push --tag T REF`: the one positional is the reference.
      const [tagArg, ref] = o.tag && b === undefined ? [undefined, a] : [a, b];
      const tag = pickTag(tagArg, o.tag, 'push');
      if (!ref) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'push: which registry reference? (forkd push TAG host/repo:tag)');
      const progress = progressPrinter(!o.json);
      const t0 = Date.now();
      try {
        const r = await engine().pushSnapshot({ tag, ref, ...(await access(o)), ...(o.sign !== undefined ? { sign: o.sign } : {}), onProgress: progress.onProgress });
        progress.done();
        if (o.json) return printJson({ ...r, seconds: (Date.now() - t0) / 1000 });
        process.stdout.write(`pushed ${tag} to ${ref}\n  digest ${r.digest}\n  ${r.links.length} link(s); sent ${rate(r.bytes_sent, Date.now() - t0)} of ${bytes(r.bytes_total)} (${r.blobs_skipped} blob(s) already there)\n`);
        if (r.signature) process.stdout.write(`  signed by ${r.signature.key_id} (${r.signature.via === 'tag' ? 'tag fallback' : 'referrers API'})\n`);
      } finally {
        progress.done();
      }
    }));

  credOptions(program.command('pull').argument('<ref>', 'registry reference host[:port]/repo[:tag|@sha256:...], or owner/name[@version] with --hub').option('--tag <tag>', 'store the head under this tag')
    .option('--hub <index>', 'hub index (registry.json: a file or URL) for owner/name[@version] (default: FORKD_HUB)')
    .option('--trust-policy <file>', 'trust policy file (default: FORKD_TRUST_POLICY, else FORKD_HOME/trust-policy.json)')
    .option('--insecure-skip-verify', 'DANGEROUS: pull even when the signatures the trust policy requires are missing or wrong'))
    .description('pull a snapshot from an OCI registry (signatures checked first; only the links this store lacks travel)')
    .action(run(async (ref: string, o: CredFlags & { tag?: string; hub?: string; trustPolicy?: string; insecureSkipVerify?: boolean; json?: boolean }) => {
      const hub = o.hub ?? process.env.FORKD_HUB;
      // Loud even with --json: the warning goes to stderr, where no JSON consumer reads it away.
      if (o.insecureSkipVerify) process.stderr.write(`${SKIP_WARNING}\n`);
      const progress = progressPrinter(!o.json);
      const t0 = Date.now();
      try {
        const r = await engine().pullSnapshot({ ref, ...(o.tag ? { tag: o.tag } : {}), ...(o.trustPolicy ? { trustPolicy: o.trustPolicy } : {}), ...(hub ? { hub } : {}), ...(o.insecureSkipVerify ? { insecureSkipVerify: true } : {}), ...(await access(o)), onProgress: progress.onProgress });
        progress.done();
        if (o.json) return printJson({ ...r, seconds: (Date.now() - t0) / 1000 });
        const v = r.verification;
        process.stdout.write(`pulled ${ref} as ${r.tag}\n  digest ${r.digest}\n  signature: ${v.status === 'verified' ? `verified (${v.signers.join(', ')}; policy scope ${v.scope})` : v.status === 'skipped' ? 'NOT VERIFIED (--insecure-skip-verify)' : 'not required by the trust policy'}\n  fetched ${r.imported.length ? r.imported.join(', ') : 'nothing (already here)'}${r.reused ? `; reused ${r.reused}` : ''}${r.imageFetched ? '; image fetched' : ''}\n  received ${rate(r.bytes_received, Date.now() - t0)}\n`);
      } finally {
        progress.done();
      }
    }));

  program.command('pack').argument('[tag]', 'snapshot tag').option('--tag <tag>', 'snapshot tag (original spelling)').option('-o, --out <file>', 'pack file to write').option('--description <text>', 'a description stored in the pack').option('--json', 'JSON output')
    .description('write a snapshot and its chain as an OCI image layout in one tar file (blobs zstd-compressed)')
    .action(run(async (t: string | undefined, o: { tag?: string; out?: string; description?: string; json?: boolean }) => {
      const tag = pickTag(t, o.tag, 'pack');
      if (!o.out) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'pack: where to? (-o FILE)');
      const progress = progressPrinter(!o.json);
      const t0 = Date.now();
      try {
        const r = await engine().packSnapshot({ tag, file: o.out, ...(o.description ? { description: o.description } : {}), onProgress: progress.onProgress });
        progress.done();
        if (o.json) return printJson({ ...r, seconds: (Date.now() - t0) / 1000 });
        process.stdout.write(`packed ${tag} into ${r.file}: ${rate(r.bytes, Date.now() - t0)}\n  digest ${r.digest}\n`);
      } finally {
        progress.done();
      }
    }));

  program.command('unpack').argument('<file>', 'pack file').option('--tag <tag>', 'store the head under this tag (default: the tag in the pack)').option('--force', 'replace a snapshot of the same tag (after the pack was verified)').option('--json', 'JSON output')
    .description('unpack a pack file into the snapshot store (verified before anything becomes visible)')
    .action(run(async (file: string, o: { tag?: string; force?: boolean; json?: boolean }) => {
      const progress = progressPrinter(!o.json);
      const t0 = Date.now();
      try {
        const r = await engine().unpackSnapshot({ file, ...(o.tag ? { tag: o.tag } : {}), ...(o.force ? { force: true } : {}), onProgress: progress.onProgress });
        progress.done();
        if (o.json) return printJson({ ...r, seconds: (Date.now() - t0) / 1000 });
        process.stdout.write(`unpacked ${file} as ${r.tag} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${r.imported.length ? r.imported.join(', ') : 'already here'})\n`);
      } finally {
        progress.done();
      }
    }));
}

/** `forkd image from-oci SOURCE --name N`: an OCI image (registry, layout dir, docker save archive) as a forkd image. */
export function registerFromOci(image: Command, ctx: CliContext): void {
  credOptions(image.command('from-oci').argument('<source>', 'registry reference host[:port]/repo[:tag|@digest], an OCI layout directory, or a `docker save` archive')
    .requiredOption('--name <name>', 'the image name recipes use (`"from": NAME`)').option('--disk-mib <mib>', 'disk size (the image must fit)', '1024'))
    .description('build a forkd image from an OCI image without Docker; the agent brings its own runtime (/.forkd)')
    .action(ctx.run(async (source: string, o: CredFlags & { name: string; diskMib: string; json?: boolean }) => {
      const diskMib = Number(o.diskMib);
      if (!Number.isInteger(diskMib) || diskMib < 64 || diskMib > 65536) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--disk-mib is an integer from 64 to 65536');
      const progress = progressPrinter(!o.json);
      try {
        const info = await ctx.engine().imageFromOci(source, { name: o.name, diskMib, registry: await access(o), onProgress: progress.onProgress });
        progress.done();
        if (o.json) return printJson(info);
        process.stdout.write(`image ${info.recipe} (${info.key.slice(0, 12)}) from ${info.oci?.ref ?? source}${info.cached ? ' (cached)' : ` built in ${(info.build_ms / 1000).toFixed(1)} s`}\n  ${info.oci?.layers ?? 0} layers, ${info.disk_mib} MiB disk; use it in a recipe with "from": "${info.recipe}"\n`);
      } finally {
        progress.done();
      }
    }));
}

