"""Stand-in for scripts/enums.py (sd-webui-controlnet 56cec5b2): the members W2SD's tests use of
ControlModelType (enums.py:157-187) and HiResFixOption (enums.py:225-228)."""

from enum import Enum


class ControlModelType(Enum):
    ControlNet = "ControlNet, Lvmin Zhang"
    T2I_Adapter = "T2I_Adapter, Chong Mou"
    AttentionInjection = "AttentionInjection, Lvmin Zhang"
    IPAdapter = "IPAdapter, Hu Ye"
    Controlllite = "Controlllite, Kohya"

    @property
    def is_controlnet(self) -> bool:
        return self in (ControlModelType.ControlNet,)


class HiResFixOption(Enum):
    BOTH = "Both"
    LOW_RES_ONLY = "Low res only"
    HIGH_RES_ONLY = "High res only"
