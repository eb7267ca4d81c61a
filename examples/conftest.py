"""django_shop is a project of its own (its pytest.ini sets the QSTASH_* variables for the
whole run, before Django starts): tests/test_plugin_django.py runs it in its own pytest.
ci_python's test runs against a dev server its CI recipe starts: tests/test_ci_recipes.py
runs the recipe."""

collect_ignore = ["django_shop", "ci_python", "ci_node"]
