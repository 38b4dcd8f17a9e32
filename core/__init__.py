"""The ground floor every Durabot process shares: settings, data files, logging, connections and the
workflow contracts (…Input/…Result/…State, IDs, search attributes, signal names).

It imports only ``trading`` and third-party code, so workflows, activities, services and every
adapter can build on it without import loops.
"""
