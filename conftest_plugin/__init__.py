"""The pytest plugin's modules (internal): pytest loads ``conftest_plugin.plugin`` through the
package's ``pytest11`` entry point.

Test suites import the public names from ``qstash_emulator.pytest``
(``from qstash_emulator.pytest import QStashFixture, reply``); the names here may change.
"""
