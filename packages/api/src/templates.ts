/**
 * Templates: a recipe with build steps (the SDKs' Template builders send exactly RecipeSchema's
 * JSON), built by the daemon into an image (a layer per step, cached by content) and a warm
 * snapshot; and the content-addressed files its copy steps name.
 */
import { z } from 'zod';
import { LIMITS, MACHINE_LIMITS, RecipeSchema, Sha256Hex, TemplateStep } from '@forkd/protocol';
import { Tag } from './common.js';
import { SnapshotInfo } from './snapshots.js';

const { memMib } = MACHINE_LIMITS;

export const TemplateBuildBody = z.object({
  /** The snapshot tag the template's warm snapshot gets (Sandbox.create(tag) boots it). */
  tag: Tag,
  /** The template: a recipe with steps. `from` may name a recipe or a template built on this daemon. */
  template: RecipeSchema,
  mem_mib: z.number().int().min(memMib.min).max(memMib.max).optional(),
  /** false (default): 202 with a job to poll (its progress carries the build log). true: block until done. */
  wait: z.boolean().optional(),
}).strict();

export const TemplateStepReport = z.object({
  index: z.number().int(),
  type: z.enum(TemplateStep.options.map((o) => o.shape.type.value) as [TemplateStepType, ...TemplateStepType[]]),
  description: z.string(),
  /** Its layer was reused: it did not run. */
  cached: z.boolean(),
  /** A leading apt step: installed in the base image by debootstrap. */
  in_base: z.boolean(),
  duration_ms: z.number(),
  /** The newest output of its command (kept with its layer). */
  output_tail: z.string(),
});
type TemplateStepType = z.output<typeof TemplateStep>['type'];

export const TemplateBuildResult = z.object({
  snapshot: SnapshotInfo,
  template: z.string(),
  image_key: z.string(),
  /** Every step's layer and the image were cached: no build VM started. */
  image_cached: z.boolean(),
  /** The snapshot was already made from this exact template: no parent booted. */
  snapshot_cached: z.boolean(),
  steps: z.array(TemplateStepReport),
  build_ms: z.number(),
});

export const TemplateFileParams = z.object({ sha256: Sha256Hex }).strict();
export const TemplateFileInfo = z.object({ sha256: Sha256Hex, bytes: z.number().int(), existed: z.boolean() });
export const TemplateFilesQuery = z.object({ sha256: z.array(Sha256Hex).max(LIMITS.templates.maxSteps * LIMITS.templates.maxCopyFiles) }).strict();
export const TemplateFilesMissing = z.object({ missing: z.array(Sha256Hex) });
