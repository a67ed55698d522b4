"""The bundled SMSC simulator: SMPP server, virtual handsets, MO injection, receipts.

    from simulator import Simulator, SimulatorConfig

    async with Simulator(SimulatorConfig(port=0, control_port=0, seed=1)) as sim:
        ...  # bind an ESME to ("127.0.0.1", sim.port); see simulator/smsc.py
"""

from simulator.config import ConfigError, SimulatorConfig
from simulator.handsets import Handset, HandsetBook, InboxMessage
from simulator.smsc import Simulator

__all__ = ["ConfigError", "Handset", "HandsetBook", "InboxMessage", "Simulator",
           "SimulatorConfig"]
