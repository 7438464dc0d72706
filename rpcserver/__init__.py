"""rpcserver: a self-hosted admin API server that speaks Kallithea's JSON-RPC API."""

__version__ = "0.1.0"

#: The Kallithea API version whose wire behaviour we reproduce (get_server_info).
KALLITHEA_API_VERSION = "0.7.0"
