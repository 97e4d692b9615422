/**
 * The Capabilities side panel and the status-bar item.  Every string from the kernel is set
 * with textContent (never innerHTML): a module or path named `<img src=x onerror=...>` shows
 * as text.
 */
import { Widget } from '@lumino/widgets';

import { formatLastUse, IGrant, IRefusal, RegistryModel } from './model';

/** What the panel shows: the current notebook's registry (or none) and how to revoke. */
export interface IPanelSource {
  model: RegistryModel | null;
  label: string;
  revoke(id: string): Promise<void>;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export class CapabilitiesPanel extends Widget {
  private _source: IPanelSource | null = null;
  private _disconnect: (() => void) | null = null;
  private _message = '';

  constructor() {
    super();
    this.id = 'ipycap-capabilities';
    this.addClass('ipycap-Panel');
    this.title.caption = 'Capabilities (ipycap)';
    this.title.label = 'Capabilities';
    this.render();
  }

  /** Show ``source`` (the current notebook), or nothing. */
  setSource(source: IPanelSource | null): void {
    if (this._disconnect) {
      this._disconnect();
      this._disconnect = null;
    }
    this._source = source;
    this._message = '';
    if (source && source.model) {
      this._disconnect = source.model.onChange(() => this.render());
    }
    this.render();
  }

  render(): void {
    const node = this.node;
    node.replaceChildren();
    const source = this._source;
    node.appendChild(el('h2', 'ipycap-Panel-title', 'Capabilities'));
    const model = source ? source.model : null;
    const snapshot = model ? model.snapshot : null;
    if (!source || !model || !snapshot) {
      node.appendChild(
        el(
          'p',
          'ipycap-Panel-empty',
          source
            ? `${source.label}: no ipycap registry in this kernel (use the capsule kernel, ` +
                'or run %load_ext ipycap).'
            : 'Open a notebook to see its capabilities.'
        )
      );
      return;
    }
    const where =
      snapshot.mode === 'kernel'
        ? 'capsule kernel: every cell is a capsule'
        : '%%capsule cells of this kernel';
    node.appendChild(el('p', 'ipycap-Panel-subtitle', `${source.label} — ${where}`));
    node.appendChild(el('p', 'ipycap-Panel-status', model.statusText));
    if (snapshot.error !== null) {
      node.appendChild(
        el('p', 'ipycap-Panel-error', `The kernel could not list its registry: ${snapshot.error}`)
      );
    }
    const result = snapshot.result;
    const message = this._message || (result ? result.message : '');
    if (message) {
      const cls = result && !result.ok && !this._message ? 'ipycap-Panel-error' : 'ipycap-Panel-note';
      node.appendChild(el('p', cls, message));
    }
    node.appendChild(el('h3', 'ipycap-Panel-heading', 'Grants'));
    node.appendChild(this._grantsTable(snapshot.grants));
    node.appendChild(el('h3', 'ipycap-Panel-heading', `Recent refusals (${snapshot.refusedTotal} in all)`));
    node.appendChild(this._refusals(model.recentRefusals));
    if (snapshot.confinement) {
      node.appendChild(el('p', 'ipycap-Panel-footer', snapshot.confinement));
    }
  }

  private _grantsTable(grants: IGrant[]): HTMLElement {
    if (!grants.length) {
      return el('p', 'ipycap-Panel-empty', 'No grants yet.');
    }
    const list = el('ul', 'ipycap-Grants');
    const now = Date.now() / 1000;
    // Active grants first, each group in grant order.
    const ordered = [
      ...grants.filter(g => g.state === 'active'),
      ...grants.filter(g => g.state !== 'active')
    ];
    for (const grant of ordered) {
      const item = el('li', `ipycap-Grant ipycap-Grant-${grant.state}`);
      item.dataset.capId = grant.id;
      const head = item.appendChild(el('div', 'ipycap-Grant-head'));
      head.appendChild(el('span', 'ipycap-Grant-id', grant.id));
      head.appendChild(el('span', 'ipycap-Grant-kind', grant.kind));
      head.appendChild(el('span', 'ipycap-Grant-state', grant.state));
      if (grant.state === 'active') {
        const button = el('button', 'jp-Button jp-mod-styled jp-mod-warn ipycap-Revoke', 'Revoke');
        button.title = `Revoke ${grant.id}: every later use is refused (only narrows authority)`;
        button.addEventListener('click', () => void this._revoke(grant.id, button));
        head.appendChild(button);
      }
      item.appendChild(el('div', 'ipycap-Grant-target', grant.target)).title = grant.target;
      const meta = item.appendChild(el('div', 'ipycap-Grant-meta', 'granted by '));
      meta.appendChild(el('span', 'ipycap-Grant-granted-by', grant.grantedBy));
      meta.appendChild(document.createTextNode(' · scope '));
      meta.appendChild(el('span', 'ipycap-Grant-scope', grant.scope));
      meta.appendChild(document.createTextNode(' · uses '));
      meta.appendChild(el('span', 'ipycap-Grant-uses', String(grant.uses)));
      meta.appendChild(document.createTextNode(' · last use '));
      meta.appendChild(el('span', 'ipycap-Grant-last-use', formatLastUse(grant.lastUse, now)));
      list.appendChild(item);
    }
    return list;
  }

  private _refusals(refusals: IRefusal[]): HTMLElement {
    if (!refusals.length) {
      return el('p', 'ipycap-Panel-empty', 'Nothing refused yet.');
    }
    const list = el('ol', 'ipycap-Refusals');
    for (const refusal of refusals) {
      const item = list.appendChild(el('li', 'ipycap-Refusal'));
      const what = refusal.what || `${refusal.kind} ${refusal.target}`;
      item.appendChild(el('div', 'ipycap-Refusal-what', what));
      const layer = refusal.layer ? `refused by the ${refusal.layer}` : 'refused';
      item.appendChild(el('div', 'ipycap-Refusal-layer', layer));
      if (refusal.how) {
        const how = item.appendChild(el('div', 'ipycap-Refusal-how', 'to grant: '));
        how.appendChild(el('code', undefined, refusal.how));
      } else {
        item.appendChild(el('div', 'ipycap-Refusal-how', 'it cannot be granted'));
      }
    }
    return list;
  }

  private async _revoke(id: string, button: HTMLButtonElement): Promise<void> {
    const source = this._source;
    if (!source) {
      return;
    }
    button.disabled = true;
    this._message = '';
    try {
      await source.revoke(id);
    } catch (err) {
      this._message = `Could not revoke ${id}: ${(err as Error).message}`;
      this.render();
    }
  }
}

/** The status-bar item: "capsule · 3 grants · 1 refused"; a click opens the panel. */
export class CapsuleStatus extends Widget {
  constructor(onClick: () => void) {
    super({ node: document.createElement('button') });
    this.addClass('ipycap-Status');
    this.node.title = 'Capabilities of this notebook (ipycap): click to open the panel';
    this.node.addEventListener('click', onClick);
  }

  setText(text: string): void {
    this.node.textContent = text;
  }
}
