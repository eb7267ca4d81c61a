from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("orders", views.order),
    path("hooks/restock", views.restock),
]
