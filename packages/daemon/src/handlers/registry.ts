/**
 * Push and pull through OCI registries, as jobs. Admin only: the daemon opens connections to the
 * address a caller names (a registry), and a pull writes snapshots other identities could be
 * given. The password is handed to the engine and kept nowhere else (not in the job record).
 * owner/name[@version] resolves through the operator's FORKD_HUB (a caller cannot name an index).
 * A pull is checked against the daemon's own trust policy (FORKD_TRUST_POLICY or
 * FORKD_HOME/trust-policy.json, read by the engine): a caller cannot name another or skip it.
 */
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import { assertCallerTag } from './tags.js';

type RegistryRoutes = 'pushSnapshot' | 'pullSnapshot';

function access(body: { username?: string | undefined; password?: string | undefined; plain_http?: boolean | undefined }) {
  return {
    ...(body.username !== undefined ? { credentials: { username: body.username, password: body.password ?? '' } } : {}),
    ...(body.plain_http ? { scheme: 'http' as const } : {}),
  };
}

export function registryHandlers(s: DaemonServices): Pick<Handlers, RegistryRoutes> {
  return {
    async pushSnapshot({ params, body, caller }) {
      s.owners.assertVisible(caller, await s.engine.getSnapshot(params.tag));
      const work = (progress: Parameters<typeof s.engine.pushSnapshot>[0]['onProgress']) => s.engine.pushSnapshot({ tag: params.tag, ref: body.ref, ...access(body), ...(progress ? { onProgress: progress } : {}) });
      if (body.wait === true) return { status: 200, body: await work(undefined) };
      const { job, done } = await s.jobs.start('snapshot.push', caller.identity, (progress) => work(progress), { exclusive: false });
      done.catch(() => undefined); // recorded in the job
      return { status: 202, body: job };
    },
    async pullSnapshot({ body, caller }) {
      if (body.tag !== undefined) assertCallerTag(body.tag);
      const work = async (progress: Parameters<typeof s.engine.pullSnapshot>[0]['onProgress']) => {
        const r = await s.engine.pullSnapshot({ ref: body.ref, ...(body.tag !== undefined ? { tag: body.tag } : {}), ...access(body), ...(progress ? { onProgress: progress } : {}) });
        for (const t of r.imported) await s.owners.record(await s.engine.getSnapshot(t), caller.identity);
        const { imageFetched, verification, ...rest } = r;
        // The policy file's path is the operator's business: only what was checked is reported.
        return { ...rest, image_fetched: imageFetched, verification: { status: verification.status, signers: verification.signers, scope: verification.scope } };
      };
      if (body.wait === true) return { status: 201, body: await work(undefined) };
      const { job, done } = await s.jobs.start('snapshot.pull', caller.identity, (progress) => work(progress));
      done.catch(() => undefined);
      return { status: 202, body: job };
    },
  };
}
