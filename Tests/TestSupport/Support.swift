import Twin
