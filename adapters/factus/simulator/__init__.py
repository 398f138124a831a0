"""Local Factus v2 simulator: `python -m adapters.factus.simulator --port 8702`."""

from adapters.factus.simulator.app import (
    FactusSimulator,
    SimulatorOptions,
    SimulatorServer,
    start_simulator,
)

__all__ = ["FactusSimulator", "SimulatorOptions", "SimulatorServer", "start_simulator"]
