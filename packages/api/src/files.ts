/** Files inside a sandbox: streamed download/upload, list, stat, mkdir, remove, rename. */
import { z } from 'zod';
import { EntryInfo, LIMITS } from '@forkd/protocol';
import { GuestPath, QueryBool } from './common.js';

export { EntryInfo };
export const MAX_UPLOAD_BYTES = LIMITS.maxUploadBytes;
export const MAX_DOWNLOAD_BYTES = LIMITS.maxDownloadBytes;

export const FilePathQuery = z.object({ path: GuestPath }).strict();
export const FileWriteQuery = z.object({ path: GuestPath, mode: z.string().regex(/^[0-7]{3,4}$/, 'mode: octal').optional() }).strict();
export const FileListQuery = z.object({ path: GuestPath, depth: z.coerce.number().int().min(1).max(LIMITS.maxListDepth).optional() }).strict();
export const FileRemoveQuery = z.object({ path: GuestPath, recursive: QueryBool.optional() }).strict();
export const MkdirBody = z.object({ path: GuestPath, parents: z.boolean().default(true) }).strict();
export const RenameBody = z.object({ from: GuestPath, to: GuestPath }).strict();

export const ListFilesResponse = z.object({ entries: z.array(EntryInfo), truncated: z.boolean() });
export const WriteInfo = z.object({ path: z.string(), size: z.number() });
export const Created = z.object({ created: z.boolean() });
export const Removed = z.object({ removed: z.boolean() });
