"""Registration: initial alignment, the ConvexAdam stages and the one-pair pipeline."""

from .methods import register_method
from .pipeline import RegistrationResult, register_pair
from .profiles import PROFILES, ConvexAdamParams, get_profile

__all__ = ["PROFILES", "ConvexAdamParams", "RegistrationResult", "get_profile", "register_method",
           "register_pair"]
