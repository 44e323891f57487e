"""The project's extension of moto's server for the jibri-autoscaler test bed.

Adds what moto 5.2.5 lacks for this project, faithful to the AWS documentation:
EC2 Auto Scaling lifecycle hooks with wait states, lifecycle actions, heartbeats,
timeouts and the instance lifecycle policy (retention); warm pools with their
Warmed:* lifecycle; EventBridge-shaped event
delivery and a scheduled-rule stand-in; a controllable per-account clock and a
control API under /_testbed/; and CloudWatch over Smithy RPC v2 CBOR.

    testbed = lifecycle_ext.build()   # patches moto, builds the WSGI app
    testbed.start()                   # timer thread
    ... serve testbed.app ...
    testbed.stop()
"""

from __future__ import annotations

from dataclasses import dataclass

from . import moto_patches
from .account import REGISTRY
from .control_api import ControlApi
from .delivery import Deliverer
from .engine import LifecycleEngine
from .ticker import Ticker
from .wsgi import TestbedApp

__all__ = ["Testbed", "build"]


@dataclass
class Testbed:
    __test__ = False

    app: TestbedApp
    ticker: Ticker
    deliverer: Deliverer

    def start(self) -> None:
        self.ticker.start()

    def stop(self) -> None:
        self.ticker.stop()
        self.deliverer.shutdown()


def build() -> Testbed:
    """Patch moto (once per process) and assemble the test bed's WSGI app."""
    # Imported here: moto's server module pulls in Flask, which only a server needs.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    deliverer = Deliverer()
    engine = LifecycleEngine(REGISTRY, deliverer)
    moto_patches.apply(engine)
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = TestbedApp(moto_app, ControlApi(REGISTRY, engine), REGISTRY)
    return Testbed(app=app, ticker=Ticker(REGISTRY, engine), deliverer=deliverer)
