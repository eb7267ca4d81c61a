"""A FastAPI order workflow built with the official Upstash Workflow SDK."""
