"""The local, Docker-free stack (PostgreSQL, Apache Kafka, Kafka Connect, Airflow) for the Quickstart and the tests.

Import what you need from its modules (``devstack.stack.Stack``, ``devstack.settings.StackSettings``): the package
itself imports nothing, so ``python -m devstack.jars`` runs before the virtualenv has the stack's libraries.
"""
