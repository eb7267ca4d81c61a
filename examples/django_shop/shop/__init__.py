"""A Django shop whose orders restock through a QStash job."""
