"""Execute protocol ``RequestSpec`` values: sync (requests) and async (aiohttp), one retry policy."""
