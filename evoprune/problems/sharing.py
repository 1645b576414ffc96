"""Problems that share their model and data between copies and leave them out of pickles."""
from __future__ import annotations

import copy

from ..errors import EvopruneError


class SharesHeavyParts:
    """Mix into a pymoo Problem whose attributes named in ``HEAVY`` hold the model and data.

    pymoo copies the algorithm (and so the problem) every generation for its history and
    checkpoints: copies share the heavy parts; pass ``exclude_from_serialization=list(HEAVY)`` to
    ``Problem.__init__`` so that pickles leave them behind.
    """

    HEAVY: tuple[str, ...] = ()

    def __deepcopy__(self, memo):
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = value if key in self.HEAVY else copy.deepcopy(value, memo)
        return clone

    def require_heavy_parts(self) -> None:
        if any(getattr(self, key, None) is None for key in self.HEAVY):
            raise EvopruneError(f"this problem was unpickled without its model and data; build a new "
                                f"{type(self).__name__} to evaluate candidates")
