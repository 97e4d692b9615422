/**
 * The Capabilities panel's model: the registry snapshot a kernel attaches to every
 * execute_reply (metadata key "ipycap", see ipycap/ipython/panel.py), checked field by field,
 * and the approval-prompt protocol.  No JupyterLab imports: jest tests it as it is.
 */

/** The metadata key of the snapshot on execute replies (and of requests on execute requests). */
export const METADATA_KEY = 'ipycap';
/** The protocol version this frontend reads. */
export const PROTOCOL = 1;
/** The prefix of the kernel's own approval prompts on the stdin channel. */
export const APPROVAL_MARKER = 'ipycap-approval: ';
/** The input_reply each dialog button sends. */
export const APPROVAL_REPLIES = { once: 'y', session: 'a', deny: 'n' } as const;
export type ApprovalAnswer = keyof typeof APPROVAL_REPLIES;

export type Mode = 'kernel' | 'extension';

export interface IGrant {
  id: string;
  kind: string;
  target: string;
  grantedBy: string;
  scope: string;
  uses: number;
  lastUse: number | null;
  state: 'active' | 'revoked';
}

export interface IRefusal {
  time: number | null;
  kind: string;
  target: string;
  what: string;
  layer: string;
  how: string | null;
}

export interface IRevokeResult {
  revoke: string | null;
  ok: boolean;
  message: string;
}

export interface ISnapshot {
  mode: Mode;
  seq: number;
  grants: IGrant[];
  refusals: IRefusal[];
  refusedTotal: number;
  confinement: string;
  result: IRevokeResult | null;
  /** Set when the kernel could not build its snapshot (the panel says so). */
  error: string | null;
}

type Raw = { [key: string]: unknown };

function isObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function strOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function parseGrant(raw: unknown): IGrant | null {
  if (!isObject(raw) || typeof raw.id !== 'string' || typeof raw.kind !== 'string') {
    return null;
  }
  return {
    id: raw.id,
    kind: raw.kind,
    target: str(raw.target),
    grantedBy: str(raw.granted_by),
    scope: str(raw.scope),
    uses: Math.max(0, Math.floor(num(raw.uses) ?? 0)),
    lastUse: num(raw.last_use),
    // Anything but an explicit "active" is shown as revoked: never more authority than sent.
    state: raw.state === 'active' ? 'active' : 'revoked'
  };
}

function parseRefusal(raw: unknown): IRefusal | null {
  if (!isObject(raw)) {
    return null;
  }
  return {
    time: num(raw.time),
    kind: str(raw.kind),
    target: str(raw.target),
    what: str(raw.what),
    layer: str(raw.layer),
    how: strOrNull(raw.how)
  };
}

function parseResult(raw: unknown): IRevokeResult | null {
  if (!isObject(raw)) {
    return null;
  }
  return { revoke: strOrNull(raw.revoke), ok: raw.ok === true, message: str(raw.message) };
}

/**
 * The snapshot in an execute_reply's metadata, or null if there is none (the kernel is not
 * an ipycap kernel, or the extension is not loaded).  Fields of the wrong type are dropped
 * or defaulted; nothing is ever evaluated or rendered as markup.
 */
export function parseSnapshot(metadata: unknown): ISnapshot | null {
  if (!isObject(metadata)) {
    return null;
  }
  const raw = metadata[METADATA_KEY];
  if (!isObject(raw) || raw.protocol !== PROTOCOL) {
    return null;
  }
  const mode: Mode = raw.mode === 'kernel' ? 'kernel' : 'extension';
  const list = <T>(value: unknown, parse: (v: unknown) => T | null): T[] =>
    Array.isArray(value) ? value.map(parse).filter((v): v is T => v !== null) : [];
  return {
    mode,
    seq: num(raw.seq) ?? 0,
    grants: list(raw.grants, parseGrant),
    refusals: list(raw.refusals, parseRefusal),
    refusedTotal: Math.max(0, num(raw.refused_total) ?? 0),
    confinement: str(raw.confinement),
    result: parseResult(raw.result),
    error: typeof raw.error === 'string' ? raw.error : null
  };
}

/** "capsule · 3 grants · 1 refused" */
export function statusText(snapshot: ISnapshot | null): string {
  if (!snapshot) {
    return '';
  }
  if (snapshot.error !== null) {
    return 'capsule · registry unavailable';
  }
  const active = snapshot.grants.filter(g => g.state === 'active').length;
  const grants = `${active} grant${active === 1 ? '' : 's'}`;
  return `capsule · ${grants} · ${snapshot.refusedTotal} refused`;
}

/** "3s ago", "5 min ago", "never"; ``now`` and ``time`` in seconds since the epoch. */
export function formatLastUse(time: number | null, now: number): string {
  if (time === null) {
    return 'never';
  }
  const ago = Math.max(0, Math.round(now - time));
  if (ago < 60) {
    return `${ago}s ago`;
  }
  if (ago < 3600) {
    return `${Math.floor(ago / 60)} min ago`;
  }
  if (ago < 86400) {
    return `${Math.floor(ago / 3600)} h ago`;
  }
  return `${Math.floor(ago / 86400)} d ago`;
}

/** Whether a code cell's source runs as a capsule in a kernel of ``mode``. */
export function isCapsuleCell(source: string, mode: Mode | null): boolean {
  if (mode === 'kernel') {
    return true;
  }
  if (mode === 'extension') {
    // IPython reads a cell magic on the cell's first line only (after blank lines).
    return /^\s*%%capsule(\s|$)/.test(source);
  }
  return false;
}

export interface IApprovalRequest {
  /** The question without the marker and the typed-answer hint. */
  question: string;
  /** The grant it would create, if the kernel named it ("read data/"). */
  grant: string | null;
  /** The kind of the grant ("read", "write", "import"), when the kernel sent it as a field. */
  kind?: string;
}

/** Printable letters that show as blank space (Hangul fillers), as the kernel escapes them. */
const BLANK_LETTERS = new Set(['\u115f', '\u1160', '\u3164', '\uffa0']);

/**
 * A kernel-sent name or path as the dialog shows it, escaped as the kernel escapes the
 * question's text (ipycap/engine/approval.py ``shown``): every character that could word
 * or reorder what is shown -- control and format characters (a right-to-left override),
 * non-ASCII blanks, look-alikes that change under NFKC -- becomes ``\uXXXX``.
 */
export function escapeShown(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    const plain =
      code < 0x80
        ? code >= 0x20 && code !== 0x7f && ch !== '\\'
        : /^[\p{L}\p{N}]$/u.test(ch) && !BLANK_LETTERS.has(ch) && ch.normalize('NFKC') === ch;
    if (plain) {
      out += ch;
    } else if (code < 0x100) {
      out += '\\x' + code.toString(16).padStart(2, '0');
    } else if (code < 0x10000) {
      out += '\\u' + code.toString(16).padStart(4, '0');
    } else {
      out += '\\U' + code.toString(16).padStart(8, '0');
    }
  }
  return out;
}

/**
 * An approval input_request: the kernel's marker on the prompt (so capsule code's input()
 * cannot raise the dialog), and the grant from the structured ``ipycap_approval`` fields
 * (``{kind, grant}``) when the kernel sent them; without them (an older kernel, a
 * ``%capsule request``) the grant is read from the question's text as before.
 */
export function parseApprovalRequest(content: {
  prompt?: unknown;
  password?: unknown;
  ipycap_approval?: unknown;
}): IApprovalRequest | null {
  const request = parseApprovalPrompt(content.prompt, content.password);
  if (request === null) {
    return null;
  }
  const fields = content.ipycap_approval as { kind?: unknown; grant?: unknown } | undefined;
  if (
    fields === null ||
    typeof fields !== 'object' ||
    typeof fields.kind !== 'string' ||
    typeof fields.grant !== 'string' ||
    !/^[a-z]+$/.test(fields.kind)
  ) {
    return request;
  }
  return {
    question: request.question,
    grant: `${fields.kind} ${escapeShown(fields.grant)}`,
    kind: fields.kind
  };
}

/**
 * The kernel's approval prompt, or null for every other input_request (capsule code's own
 * input() prompts start with "capsule asks: " and are left to the ordinary stdin box).
 */
export function parseApprovalPrompt(prompt: unknown, password: unknown): IApprovalRequest | null {
  if (typeof prompt !== 'string' || password === true || !prompt.startsWith(APPROVAL_MARKER)) {
    return null;
  }
  let question = prompt.slice(APPROVAL_MARKER.length).trim();
  // The typed-answer hint ("[y]es / [n]o / [a]lways this session", "[y/N]") is for the
  // plain stdin box; the dialog's buttons replace it.
  question = question.replace(/\s*\[[^\]]*\][^?]*$/, '').trim();
  const grant = /\(grant: ([^()]*)\)/.exec(question);
  return { question, grant: grant ? grant[1].trim() : null };
}

export type Listener = () => void;

/**
 * The registry of one kernel as the panel shows it.  ``update`` takes each execute_reply's
 * metadata; ``revokeRequest`` builds the one request the kernel serves.
 */
export class RegistryModel {
  private _snapshot: ISnapshot | null = null;
  private _present = false;
  private _listeners: Listener[] = [];

  /** The latest snapshot, or null (no ipycap in this kernel, or not heard from yet). */
  get snapshot(): ISnapshot | null {
    return this._snapshot;
  }

  /** Whether the kernel's last reply came from ipycap. */
  get present(): boolean {
    return this._present;
  }

  get mode(): Mode | null {
    return this._snapshot ? this._snapshot.mode : null;
  }

  get statusText(): string {
    return statusText(this._snapshot);
  }

  get activeGrants(): IGrant[] {
    return this._snapshot ? this._snapshot.grants.filter(g => g.state === 'active') : [];
  }

  /** Refusals, newest first. */
  get recentRefusals(): IRefusal[] {
    return this._snapshot ? [...this._snapshot.refusals].reverse() : [];
  }

  onChange(listener: Listener): () => void {
    this._listeners.push(listener);
    return () => {
      this._listeners = this._listeners.filter(l => l !== listener);
    };
  }

  /**
   * Read an execute_reply: its ``status`` (content) and ``metadata``.  An aborted reply
   * (the kernel skipped the request) says nothing; a reply without a snapshot means ipycap
   * is not (or no longer) in this kernel.  Returns whether the model changed.
   */
  update(status: unknown, metadata: unknown): boolean {
    if (status === 'aborted') {
      return false;
    }
    const snapshot = parseSnapshot(metadata);
    if (snapshot === null && !this._present) {
      return false;
    }
    this._snapshot = snapshot;
    this._present = snapshot !== null;
    this._emit();
    return true;
  }

  clear(): void {
    if (this._snapshot !== null || this._present) {
      this._snapshot = null;
      this._present = false;
      this._emit();
    }
  }

  /** The execute_request metadata that revokes ``id`` (an active grant of this snapshot). */
  revokeRequest(id: string): { [METADATA_KEY]: { revoke: string } } {
    if (!this.activeGrants.some(g => g.id === id)) {
      throw new Error(`${id} is not an active capability of this kernel`);
    }
    return { [METADATA_KEY]: { revoke: id } };
  }

  private _emit(): void {
    for (const listener of [...this._listeners]) {
      listener();
    }
  }
}
