"""Network segmentation adapters (nftables): isolate zones and hosts, restrict conduits."""

from adapters.network.nftables import NftablesAdapter
from adapters.network.topology import EnforcementPoint, NetworkTopology

__all__ = ["EnforcementPoint", "NetworkTopology", "NftablesAdapter"]
