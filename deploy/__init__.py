"""Deployment files (nginx in front of `python -m bot web`) and a runner for them on one machine."""
