"""Registration: initial alignment, the ConvexAdam stages and the one-pair pipeline."""

from breastlib.profiles import PROFILES, ConvexAdamParams, get_profile
from breastlib.register.methods import register_method
from breastlib.register.pipeline import RegistrationResult, register_pair

__all__ = ["PROFILES", "ConvexAdamParams", "RegistrationResult", "get_profile", "register_method",
           "register_pair"]
