"""Contract test suites a plugin runs on itself.

A new backend, target or model is tested by calling these checks from its own tests;
each raises ``AssertionError`` with a message that says what broke the contract.
"""
