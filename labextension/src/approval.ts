/**
 * The approval dialog.  The kernel asks for a grant on Jupyter's stdin channel with a prompt
 * that starts with "ipycap-approval: " (capsule code's own input() prompts start with
 * "capsule asks: ", so a cell cannot raise it); the dialog answers that input_request with the
 * input_reply "y" (Allow once), "a" (Allow this session) or "n" (Deny, Escape, or the request
 * going away) and the plain stdin box is not shown for it.  The grant it shows comes from the
 * request's structured ``ipycap_approval`` fields (``{kind, grant}``), not from the prompt's text.
 */
import { Dialog } from '@jupyterlab/apputils';
import { OutputArea } from '@jupyterlab/outputarea';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { APPROVAL_REPLIES, ApprovalAnswer, IApprovalRequest, parseApprovalRequest } from './model';

const LABELS: { [K in ApprovalAnswer]: string } = {
  once: 'Allow once',
  session: 'Allow this session',
  deny: 'Deny'
};

function body(request: IApprovalRequest): Widget {
  const node = document.createElement('div');
  node.className = 'ipycap-Approval-body';
  const question = node.appendChild(document.createElement('p'));
  question.className = 'ipycap-Approval-question';
  question.textContent = request.question;
  if (request.grant) {
    const grant = node.appendChild(document.createElement('p'));
    grant.className = 'ipycap-Approval-grant';
    grant.textContent = 'Grant: ';
    grant.appendChild(document.createElement('code')).textContent = request.grant;
  }
  const origin = node.appendChild(document.createElement('p'));
  origin.className = 'ipycap-Approval-origin';
  origin.textContent =
    'Asked by the ipycap kernel itself, not by a cell\u2019s output. ' +
    'Allow once: this access only. Allow this session: until the kernel restarts.';
  return new Widget({ node });
}

/** Ask the human; resolves to the input_reply value. */
export async function askApproval(
  request: IApprovalRequest,
  done?: Promise<unknown>
): Promise<string> {
  const dialog = new Dialog({
    title: 'ipycap: allow access?',
    body: body(request),
    buttons: [
      Dialog.okButton({ label: LABELS.once, className: 'ipycap-Approval-once' }),
      Dialog.okButton({ label: LABELS.session, className: 'ipycap-Approval-session' }),
      Dialog.warnButton({ label: LABELS.deny, className: 'ipycap-Approval-deny' })
    ],
    defaultButton: 2,
    hasClose: true
  });
  dialog.addClass('ipycap-Approval');
  // The request ends without an answer (interrupt, restart): close the dialog as a denial.
  void done?.then(
    () => dialog.reject(),
    () => dialog.reject()
  );
  const result = await dialog.launch();
  dialog.dispose();
  const answer = (Object.keys(LABELS) as ApprovalAnswer[]).find(
    key => result.button.accept !== undefined && result.button.label === LABELS[key]
  );
  return APPROVAL_REPLIES[answer ?? 'deny'];
}

type InputRequestHandler = (
  this: OutputArea,
  msg: KernelMessage.IInputRequestMsg,
  future: Kernel.IShellFuture
) => void;

let installed = false;

/**
 * Route the kernel's approval prompts to the dialog in every output area (notebooks and
 * consoles, JupyterLab and Notebook 7); every other input_request keeps the stdin box.
 */
export function installApprovalDialog(): void {
  if (installed) {
    return;
  }
  installed = true;
  const proto = OutputArea.prototype as unknown as { onInputRequest: InputRequestHandler };
  const original = proto.onInputRequest;
  proto.onInputRequest = function (msg, future) {
    const request = parseApprovalRequest(msg.content);
    if (request === null) {
      original.call(this, msg, future);
      return;
    }
    void askApproval(request, future.done).then(value => {
      if (!future.isDisposed) {
        future.sendInputReply({ status: 'ok', value }, msg.header);
      }
    });
  };
}
