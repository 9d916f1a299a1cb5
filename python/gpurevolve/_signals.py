"""SIGTERM and SIGHUP during a long call end the process as they would, after clean-up.

Python leaves both signals at the operating system's default, which ends the process at
once: a run with a disk tier would leave its checkpoint files behind. Batch schedulers send
SIGTERM. While a call of ``Device`` runs on the main thread, a handler that raises
``Terminated`` replaces each default one; the run stops at its next check (as for Ctrl-C),
unwinds and removes its files, and then the signal is sent again with the default action
restored, so the process ends exactly as the sender asked. Handlers the program installed
itself are left alone.
"""

import os
import signal
import threading

_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(BaseException):
    """A termination signal arrived during a call; it is sent again once the call is undone."""


def _raise(signum, _frame):
    raise Terminated(signum)


def enter():
    """Installs the handlers where the defaults stand; returns what to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    saved = {}
    for sig in _SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            saved[sig] = signal.signal(sig, _raise)
    return saved


def leave(saved, error):
    """Restores the handlers; if ``error`` is ``Terminated``, delivers its signal again."""
    for sig, old in saved.items():
        signal.signal(sig, old)
    if isinstance(error, Terminated):
        os.kill(os.getpid(), error.args[0])
