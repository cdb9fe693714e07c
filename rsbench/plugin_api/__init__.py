"""What a plugin writes against: the hooks (hookspecs), the records it declares (catalog), the task and
backbone contracts, and the host that finds plugins (plugin_host).
"""
