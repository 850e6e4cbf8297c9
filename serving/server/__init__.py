"""A TensorFlow-Serving-compatible model server (REST and gRPC) that serves any SavedModel.

It never imports `zoo` or `training`: what it serves is whatever the SavedModels under its base paths contain.
"""
