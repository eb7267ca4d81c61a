"""django_shop is a project of its own (its pytest.ini sets the QSTASH_* variables for the
whole run, before Django starts): tests/test_plugin_django.py runs it in its own pytest."""

collect_ignore = ["django_shop"]
