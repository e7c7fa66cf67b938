"""A picture of a partitioned graph: which nodes run in which TensorRT engine, as SVG or HTML.

``view`` is what is drawn, ``layout`` where it goes, ``svg`` and ``page`` the two renderings
(the page's script and style are ``viewer.js`` and ``viewer.css``, shipped as package data),
``files`` the writing."""

from hybridtrt.tools.picture.files import picture_format, render_file, write_picture
from hybridtrt.tools.picture.page import render_html
from hybridtrt.tools.picture.svg import render_svg
from hybridtrt.tools.picture.view import GraphView, PictureNode, view_of_hybrid, view_of_model

__all__ = [
    "GraphView",
    "PictureNode",
    "picture_format",
    "render_file",
    "render_html",
    "render_svg",
    "view_of_hybrid",
    "view_of_model",
    "write_picture",
]
