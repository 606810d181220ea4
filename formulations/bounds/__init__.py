"""Lower bounds on the weighted frame violations of a ``Problem``.

* ``lagrangian`` — prices on backend time over a grid; valid for any prices;
* ``phase_lp`` — prices chosen by a small LP over the frames' repeat period;
* ``certificate`` — the prices and value written out, for anyone to re-check.
"""

from .lagrangian import BoundValue, Prices, lagrangian_value
from .phase_lp import phase_prices

__all__ = ["BoundValue", "Prices", "lagrangian_value", "phase_prices"]
