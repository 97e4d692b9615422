"""Answers matched to their question on the kernel's stdin channel.

ipykernel's ``_input_request`` takes the first ``input_reply`` that arrives after it asked,
whatever question the human was answering.  A question abandoned by a stop or an interrupt
(a cell's --timeout, a capsule thread stopped while it waits) stays on the frontend's page;
the human's late answer to it would be taken as the answer to the next question -- possibly
an approval of something else.  Here:

* a reply whose ``parent_header`` names another request is never this one's answer
  (JupyterLab sends the input_request's header back as the reply's parent);
* a reply with no parent (``jupyter_client``'s ``KernelClient.input``, consoles) cannot say
  which question it answers: while an abandoned question may still be on the page, the first
  such reply is counted as that question's (late) answer and dropped;
* a question abandoned while waiting is withdrawn: counted, and said so on stderr;
* an approval question also carries its grant as structured fields (``ipycap_approval``:
  ``{"kind", "grant"}``), so a frontend need not parse the question's text.
"""

from __future__ import annotations

import sys

import zmq
from ipykernel.jsonutil import json_clean


class MatchedStdin:
    """The state of one kernel's questions: how many abandoned ones may still be answered."""

    def __init__(self):
        self.abandoned = 0
        #: The engine's open approval question as structured fields ({"kind", "grant"}), sent
        #: as the input_request's "ipycap_approval" beside the prompt text (the text form
        #: stays: frontends that do not read the fields parse it as before).
        self.fields: dict | None = None

    def _drop_stale(self, kernel) -> None:
        """Purge replies already waiting (answers to abandoned questions)."""
        while True:
            try:
                kernel.stdin_socket.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError as e:
                if e.errno == zmq.EAGAIN:
                    return
                raise
            self.abandoned = max(self.abandoned - 1, 0)

    def request(self, kernel, prompt, ident, parent, password=False) -> str:
        if sys.stdout is not None:
            sys.stdout.flush()
        if sys.stderr is not None:
            sys.stderr.flush()
        self._drop_stale(kernel)
        content = dict(prompt=prompt, password=password)
        if self.fields is not None:
            content["ipycap_approval"] = {k: str(v) for k, v in self.fields.items()}
        content = json_clean(content)
        sent = kernel.session.send(
            kernel.stdin_socket, "input_request", content, parent, ident=ident
        )
        msg_id = sent["header"]["msg_id"]
        try:
            reply = self._await(kernel, msg_id)
        except BaseException:
            self.abandoned += 1  # the question stays on the page: withdrawn
            try:
                sys.stderr.write(
                    "[ipycap: the question above was withdrawn; an answer to it is ignored]\n"
                )
            except Exception:  # noqa: BLE001, S110 - a closed stream: the count still holds
                pass
            raise
        try:
            value: str = reply["content"]["value"]
        except Exception:  # noqa: BLE001 - as ipykernel: a bad reply is an empty answer
            kernel.log.error("Bad input_reply: %s", parent)
            value = ""
        if value == "\x04":
            raise EOFError
        return value

    def _await(self, kernel, msg_id: str):
        while True:
            try:
                rlist, _, xlist = zmq.select([kernel.stdin_socket], [], [kernel.stdin_socket], 0.01)
                if not (rlist or xlist):
                    continue
                ident, reply = kernel.session.recv(kernel.stdin_socket)
                if (ident, reply) == (None, None):
                    continue
            except KeyboardInterrupt:
                raise KeyboardInterrupt("Interrupted by user") from None
            except Exception:  # noqa: BLE001 - as ipykernel: an invalid message is skipped
                kernel.log.warning("Invalid Message:", exc_info=True)
                continue
            answered = (reply.get("parent_header") or {}).get("msg_id")
            if answered:
                if answered == msg_id:
                    return reply
                kernel.log.warning("input_reply to another question (%s) ignored", answered)
                continue
            if self.abandoned:
                self.abandoned -= 1  # a late answer to a withdrawn question
                kernel.log.warning("input_reply with no parent ignored: a question was withdrawn")
                continue
            return reply
