"""Stage 6, engines: ``engines`` builds every cluster; ``refine`` splits a cluster where
TensorRT's parser disagrees with our rules and bisects one whose build fails."""
