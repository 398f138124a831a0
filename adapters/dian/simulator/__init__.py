"""A local DIAN (WcfDianCustomerServices) speaking the real SOAP 1.2 contract, for tests and demos.

It checks what DIAN checks (WS-Security, zip, UBL schema, XAdES signature, CUFE, duplicates)
and can inject the failures DIAN shows in the field (latency, 5xx, timeouts, dropped
connections, InvalidSecurity faults, malformed or hostile XML).
"""

from adapters.dian.simulator.app import SimulatorServer, start_simulator
from adapters.dian.simulator.state import Options

__all__ = ["Options", "SimulatorServer", "start_simulator"]
