"""SIGTERM and SIGHUP during a long call end the process as they would, after clean-up.

Python leaves both signals at the operating system's default, which ends the process at
once: a run with a disk tier would leave its checkpoint files behind. Batch schedulers send
SIGTERM. While a call of ``Device`` runs on the main thread, a handler that raises
``Terminated`` replaces each default one; the run stops at its next check (as for Ctrl-C),
unwinds and removes its files, and then the signal is sent again with the default action
restored, so the process ends exactly as the sender asked. A signal that arrives after the
run's last check, or while the handlers are being restored, is kept and sent the same way.
Handlers the program installed itself are left alone.
"""

import os
import signal
import threading

_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)

# The signal that arrived during the call, if any; whether the run may still be stopped by
# an exception (False once the call is being undone).
_pending = None
_raising = False


class Terminated(BaseException):
    """A termination signal arrived during a call; it is sent again once the call is undone."""


def _handle(signum, _frame):
    global _pending
    _pending = signum
    if _raising:
        raise Terminated(signum)


def enter():
    """Installs the handlers where the defaults stand; returns what to restore."""
    global _pending, _raising
    if threading.current_thread() is not threading.main_thread():
        return {}
    saved = {}
    for sig in _SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            saved[sig] = signal.signal(sig, _handle)
    if saved:
        _pending, _raising = None, True
    return saved


def leave(saved, error):
    """Restores the handlers; delivers a signal that arrived during the call again."""
    global _raising
    _raising = False
    for sig, old in saved.items():
        signal.signal(sig, old)
    signum = error.args[0] if isinstance(error, Terminated) else _pending
    if saved and signum is not None:
        os.kill(os.getpid(), signum)
