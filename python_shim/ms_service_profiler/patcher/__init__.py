"""Symbol patcher: YAML (config), expressions (expr), hooks (import hook and wrappers)."""


def enable_hooks():
    """Load the symbol YAML and install the hooks in this process; returns the Patcher."""
    from .hooks import patcher
    from .. import _control
    patcher.load_and_apply()
    _control.reload_hook = patcher.reload
    return patcher


def disable_hooks():
    """Restore every hooked object in this process (a real per-process off switch)."""
    from .hooks import patcher
    from .. import _control
    _control.reload_hook = None
    patcher.unhook_all()
