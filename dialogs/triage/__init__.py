"""Triage: notices a child in danger in one message, in Russian or English.

``assess(text, locale)`` returns an :class:`Assessment`: whether there is danger, which
danger signals, the case category and the risk. The lexicons are reviewed data files in
``dialogs/triage/data/``; see the README there.
"""

from .assess import Assessment, assess, forget

__all__ = ["Assessment", "assess", "forget"]
