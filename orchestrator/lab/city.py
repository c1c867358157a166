"""The whole lab as one part: traffic controllers, the namespace network, the identity
servers (and the service simulators), started and stopped together by `bulkhead up` and
`bulkhead lab up`. Each part that cannot run on this host says why in the banner."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from orchestrator.config import Settings
from orchestrator.lab.cityservice import CityServiceLab
from orchestrator.lab.identity import IdentityLab
from orchestrator.lab.network import CityNetwork, start_city_lab
from orchestrator.lab.parts import stop_all
from orchestrator.lab.secretfiles import write_secret
from orchestrator.lab.substation import SubstationLab
from orchestrator.lab.traffic import TrafficLab

# Where the inventory's http records find the city service's bearer token.
CITY_SERVICE_TOKEN_FILE = "cityservice-token"  # noqa: S105 - a file name, not a secret


@dataclass
class CityLab:
    settings: Settings
    traffic: TrafficLab | None = None
    network: CityNetwork | None = None
    identity: IdentityLab | None = None
    substation: SubstationLab | None = None
    services: CityServiceLab | None = None
    lines: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        settings = self.settings
        try:
            self.traffic = TrafficLab(host=settings.lab_host, port=settings.lab_modbus_port)
            await self.traffic.start()
            self.lines["Lab (Modbus)"] = (
                f"{self.traffic.host}:{self.traffic.port}  traffic controllers units "
                f"{list(self.traffic.device_ids)}"
            )
            # Namespaces need root; without, network steps are planned but not applied.
            self.network, self.lines["Network lab"] = await start_city_lab(settings)
            self.identity = IdentityLab.from_inventory(settings)
            self.substation = SubstationLab(host=settings.lab_host, port=settings.lab_opcua_port)
            self.services = CityServiceLab(host=settings.lab_host, port=settings.lab_http_port)
            write_secret(settings.lab_secrets_dir / CITY_SERVICE_TOKEN_FILE, self.services.token)
            # The OPC UA server takes a second or two to build: start the three together.
            await asyncio.gather(
                self.identity.start(), self.substation.start(), self.services.start()
            )
            self.lines["Identity lab"] = self.identity.banner()
            self.lines["Substation"] = f"OPC UA {self.substation.endpoint} (North = rtu-e01)"
            self.lines["City services"] = (
                f"{self.services.url}  tram /tram/mode, permits /permits/mode, "
                "dispatch /dispatch/health"
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        parts = {
            "city services": self.services,
            "substation": self.substation,
            "identity": self.identity,
            "network": self.network,
            "traffic": self.traffic,
        }
        await stop_all({name: p.stop if p is not None else None for name, p in parts.items()})

    def banner_lines(self) -> list[str]:
        return [f"  {name:<13} {line}" for name, line in self.lines.items()]
