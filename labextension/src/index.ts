/**
 * ipycap in JupyterLab 4 and Notebook 7: the Capabilities side panel, the status-bar item,
 * capsule-cell marks and the approval dialog.
 *
 * The registry arrives only in the metadata of execute_reply messages on the shell channel,
 * which trusted kernel code writes after each cell (ipycap/ipython/panel.py).  Output a cell
 * prints or displays (iopub) is never read here, so a cell cannot forge or hide entries.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { installApprovalDialog } from './approval';
import { isCapsuleCell, METADATA_KEY, RegistryModel } from './model';
import { CapabilitiesPanel, CapsuleStatus } from './panel';

const OPEN_COMMAND = 'ipycap:open-capabilities';
const CAPSULE_CELL_CLASS = 'ipycap-capsuleCell';

const ICON = new LabIcon({
  name: 'ipycap:capsule',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M12 2 4 5v6c0 5 3.4 9.7 8 11 4.6-1.3 8-6 ' +
    '8-11V5l-8-3zm0 2.2 6 2.2V11c0 4-2.6 7.8-6 8.9C8.6 18.8 6 15 6 11V6.4l6-2.2z"/></svg>'
});

/** The parts of a notebook panel this plugin uses (no @jupyterlab/notebook dependency). */
interface ICellLike {
  model: { type: string; sharedModel: { getSource(): string } };
  addClass(name: string): void;
  removeClass(name: string): void;
}
interface ISessionContextLike {
  session: { kernel: Kernel.IKernelConnection | null } | null;
  kernelChanged: Signal<unknown, unknown>;
  statusChanged: Signal<unknown, Kernel.Status>;
}
interface INotebookLike extends Widget {
  sessionContext: ISessionContextLike;
  content: {
    widgets: readonly ICellLike[];
    model: { contentChanged: Signal<unknown, void>; cells: { changed: Signal<unknown, unknown> } } | null;
    modelChanged?: Signal<unknown, void>;
  };
}

function asNotebook(widget: Widget | null): INotebookLike | null {
  const w = widget as unknown as Partial<INotebookLike> | null;
  if (
    w &&
    w.sessionContext &&
    w.content &&
    Array.isArray((w.content as { widgets?: unknown }).widgets) &&
    (w.content as { model?: { cells?: unknown } }).model?.cells
  ) {
    return w as INotebookLike;
  }
  return null;
}

const REFRESH: KernelMessage.IExecuteRequestMsg['content'] = {
  code: '',
  silent: true,
  store_history: false,
  allow_stdin: false,
  stop_on_error: false
};

/** One notebook's registry, kept up to date from its kernel's execute replies. */
class Tracked {
  readonly model = new RegistryModel();
  private _kernel: Kernel.IKernelConnection | null = null;
  private _needsRefresh = true;
  private _marking = 0;

  constructor(readonly notebook: INotebookLike) {
    const ctx = notebook.sessionContext;
    ctx.kernelChanged.connect(this._onKernelChanged, this);
    ctx.statusChanged.connect(this._onStatus, this);
    this._connectModel();
    notebook.content.modelChanged?.connect(this._connectModel, this);
    this.model.onChange(() => this.markCells());
    this._onKernelChanged();
  }

  get label(): string {
    return this.notebook.title.label || 'this notebook';
  }

  /** Ask the kernel for its registry (a silent, empty execute_request). */
  refresh(): void {
    const kernel = this._kernel;
    if (!kernel || kernel.status !== 'idle') {
      this._needsRefresh = true;
      return;
    }
    this._needsRefresh = false;
    kernel.requestExecute(REFRESH, true, { [METADATA_KEY]: {} });
  }

  async revoke(id: string): Promise<void> {
    const kernel = this._kernel;
    if (!kernel) {
      throw new Error('no kernel');
    }
    const metadata = this.model.revokeRequest(id);
    const future = kernel.requestExecute(REFRESH, true, metadata);
    await future.done; // the reply's snapshot updates the model (see _onMessage)
  }

  /** Mark the cells that run as capsules. */
  markCells(): void {
    if (this._marking) {
      return;
    }
    this._marking = window.requestAnimationFrame(() => {
      this._marking = 0;
      const mode = this.model.mode;
      for (const cell of this.notebook.content.widgets) {
        const capsule =
          cell.model.type === 'code' && isCapsuleCell(cell.model.sharedModel.getSource(), mode);
        if (capsule) {
          cell.addClass(CAPSULE_CELL_CLASS);
        } else {
          cell.removeClass(CAPSULE_CELL_CLASS);
        }
      }
    });
  }

  private _connectModel(): void {
    const model = this.notebook.content.model;
    if (model) {
      model.contentChanged.connect(this.markCells, this);
      model.cells.changed.connect(this.markCells, this);
    }
    this.markCells();
  }

  private _onKernelChanged(): void {
    if (this._kernel) {
      this._kernel.anyMessage.disconnect(this._onMessage, this);
    }
    this._kernel = this.notebook.sessionContext.session?.kernel ?? null;
    this.model.clear();
    if (this._kernel) {
      this._kernel.anyMessage.connect(this._onMessage, this);
      this._needsRefresh = true;
      this.refresh();
    }
  }

  private _onStatus(_: unknown, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'starting') {
      this.model.clear();
      this._needsRefresh = true;
    } else if (status === 'idle' && this._needsRefresh) {
      this.refresh();
    }
  }

  private _onMessage(_: Kernel.IKernelConnection, args: Kernel.IAnyMessageArgs): void {
    const msg = args.msg;
    if (
      args.direction !== 'recv' ||
      msg.channel !== 'shell' ||
      msg.header.msg_type !== 'execute_reply'
    ) {
      return;
    }
    const content = msg.content as { status?: unknown };
    this.model.update(content.status, msg.metadata);
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'ipycap:plugin',
  description:
    "ipycap's registry: a Capabilities panel, a status item, capsule-cell marks and the " +
    'approval dialog',
  autoStart: true,
  optional: [IStatusBar, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null
  ) => {
    installApprovalDialog();
    const tracked = new WeakMap<Widget, Tracked>();
    const panel = new CapabilitiesPanel();
    panel.title.icon = ICON;
    app.shell.add(panel, 'right', { rank: 700 });

    let current: Tracked | null = null;
    const changed = new Signal<object, void>(panel);
    const status = new CapsuleStatus(() => void app.commands.execute(OPEN_COMMAND));
    const updateStatus = () => {
      status.setText(current ? current.model.statusText : '');
      changed.emit();
    };

    const track = (widget: Widget | null): Tracked | null => {
      const notebook = asNotebook(widget);
      if (!notebook) {
        return null;
      }
      let t = tracked.get(notebook);
      if (!t) {
        t = new Tracked(notebook);
        t.model.onChange(() => {
          if (t === current) {
            updateStatus();
          }
        });
        tracked.set(notebook, t);
      }
      return t;
    };

    const onCurrent = () => {
      // Every open notebook keeps its registry current, not only the one in front.
      for (const widget of app.shell.widgets('main')) {
        track(widget);
      }
      const next = track(app.shell.currentWidget);
      if (next === null && current && !current.notebook.isDisposed) {
        return; // a non-notebook tab (or the panel itself) keeps the last notebook shown
      }
      current = next;
      panel.setSource(
        current
          ? { model: current.model, label: current.label, revoke: id => current!.revoke(id) }
          : null
      );
      updateStatus();
    };
    app.shell.currentChanged?.connect(onCurrent);
    app.restored.then(onCurrent);

    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Show Capabilities (ipycap)',
      execute: () => {
        if (panel.isHidden || !panel.isVisible) {
          app.shell.activateById(panel.id);
        }
      }
    });
    palette?.addItem({ command: OPEN_COMMAND, category: 'ipycap' });

    if (statusBar) {
      statusBar.registerStatusItem('ipycap:status', {
        item: status,
        align: 'left',
        rank: 10,
        isActive: () => !!current && current.model.present,
        activeStateChanged: changed
      });
    }
  }
};

export default plugin;
