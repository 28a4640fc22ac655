"""Serving gateway: endpoints, routing, protocols, micro-batching, prediction log."""

from mlops.serving._app import create_serving_app
from mlops.serving._batching import MicroBatcher
from mlops.serving._endpoints import Endpoint, EndpointStore
from mlops.serving._gateway import EndpointRuntime, ServingState
from mlops.serving._pool import ModelPool
from mlops.serving._predlog import PredictionLogWriter, PredictionRecord
from mlops.serving._routes import Route, Router, RouteTable
from mlops.serving._served import Prediction, ServedVersion
from mlops.serving._server import serve

__all__ = [
    "Endpoint",
    "EndpointRuntime",
    "EndpointStore",
    "MicroBatcher",
    "ModelPool",
    "Prediction",
    "PredictionLogWriter",
    "PredictionRecord",
    "Route",
    "RouteTable",
    "Router",
    "ServedVersion",
    "ServingState",
    "create_serving_app",
    "serve",
]
