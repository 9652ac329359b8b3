"""The data stages: where images come from (`sources`, `synth`, `download`), the paper's transformations
(`composite`), the eight variants built on disk (`build`), and the loaders that read them (`datasets`)."""
